"""securechat benchmarks: `python -m bench --help`; figures and findings in README.md."""
