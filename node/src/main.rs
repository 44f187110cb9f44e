//! Entry point of the `distribute` binary: hands the process arguments to [`distribute::cli`].

fn main() -> std::process::ExitCode {
    distribute::cli::main()
}
