"""Release tooling: reproducible artifacts, checksums, manifest, verify, version policy, release
train and rollback drill. Run ``python -m tools.release --help``; see ``docs/release.md``."""
