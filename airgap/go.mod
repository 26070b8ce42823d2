// Small programs the offline image factory needs (see tests/e2e/README.md). Standard library only.
module sentiment-platform.local/airgap

go 1.24
