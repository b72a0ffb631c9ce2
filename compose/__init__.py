"""The compose stack: its files, and the code that runs it for real (stack.py, stack_test.py)."""
