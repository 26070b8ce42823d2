"""The e2e run (`make e2e`), a package: run.py is the runner (arguments, stage order, report), runner.py what
the stages share, stages/ one module per stage with its checks. tests/e2e/e2e.py is the entry point."""
