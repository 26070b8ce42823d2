// Small programs the offline e2e image build needs (see README.md). Standard library only.
module sentiment-platform.local/hack/e2e

go 1.24
