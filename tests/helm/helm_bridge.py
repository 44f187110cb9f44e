"""Bridge from the Rust chart tests to the Helm v4 engine in helm-python-sdk (libhelm_c.so).

Usage: python3 helm_bridge.py SDK_DIR COMMAND CHART [VALUES_YAML|-] [RELEASE NAMESPACE]

  lint      helm lint --strict with the given values      -> {"messages": [...], "errors": [...]}
  validate  check values against values.schema.json       -> {"ok": true} or {"ok": false, "error"}
  render    helm template (offline; values are validated)  -> {"templates": {path: yaml},
                                                               "crds": [{"name", "filename", "data"}]}

Values come as a YAML file, read by Helm's own parser (`helm -f`). Results are one JSON document on
stdout; a failure of the engine itself (bad chart, template error) is {"error": "..."} with exit
status 2, so the caller can tell it from a finding.
"""

import json
import sys


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 64
    sdk_dir, command, chart_path = argv[1], argv[2], argv[3]
    values_file = argv[4] if len(argv) > 4 and argv[4] != "-" else None
    release = argv[5] if len(argv) > 5 else "demo"
    namespace = argv[6] if len(argv) > 6 else "distribute-system"

    sys.path.insert(0, sdk_dir)
    import helm_python  # noqa: E402  (the unpacked wheel, found through sdk_dir)

    try:
        values = None
        if values_file is not None:
            with open(values_file, encoding="utf-8") as f:
                values = helm_python.values_from_yaml(f.read())
        if command == "lint":
            out = helm_python.lint(chart_path, values, strict=True, namespace=namespace)
        elif command == "validate":
            with helm_python.Chart.load(chart_path) as chart:
                try:
                    chart.validate_schema(values)
                    out = {"ok": True}
                except helm_python.HelmValuesError as e:
                    out = {"ok": False, "error": str(e)}
        elif command == "render":
            with helm_python.Chart.load(chart_path) as chart:
                chart.validate_schema(values)
                templates = chart.render(
                    values, name=release, namespace=namespace, is_install=True
                )
                crds = chart.crds
            out = {"templates": templates, "crds": crds}
        else:
            print(f"unknown command {command!r}", file=sys.stderr)
            return 64
    except helm_python.HelmError as e:
        json.dump({"error": f"{type(e).__name__}: {e}"}, sys.stdout)
        return 2
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
