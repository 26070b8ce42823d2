"""One module per stage of the e2e run, each declaring its STAGE (runner.Stage): the function, the report's
stage name, the checks it records and the stages it needs first. run.py lists them in run order."""
