//! The command line.

/// Run the CLI.
pub fn main() -> std::process::ExitCode {
    std::process::ExitCode::SUCCESS
}
