"""Example python task: prints what the scheduler told it about its attempt."""
import os

print(f"summarizing run {os.environ['LEOFLOW_RUN_ID']} of {os.environ['LEOFLOW_DAG_ID']}, "
      f"try {os.environ['LEOFLOW_TRY_NUMBER']}")
