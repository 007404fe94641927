"""What every command shares: the change contract (`request.py`), performing a request
behind the guard (`perform.py`), what an action may use (`run.py`), finding its stack
(`resolve.py`) and following a deployment (`follow.py`)."""
