"""Cloud 66: its API's models (`models.py`), the client that speaks it (`client.py`),
how its lists are paged (`paging.py`), its refusals as igor's errors (`refusals.py`),
and what its deployments and actions say together (`activity.py`)."""
