"""The floors igor's figures are measured against: programs that do the same work and
print the same bytes, with nothing of igor's (SPEC section 8).

Each is a script for `python -c`, run as a whole process like igor; `__main__.py` checks
that a floor prints what igor prints before it times either.
"""

from __future__ import annotations

# What every floor below knows of Cloud 66's words (cloud66.py's StackStatus and
# StackHealth texts: the byte comparison says when they drift).
_WORDS = """
STATUS = {0: "Pending analysis", 1: "Deployed successfully", 2: "Deployment failed",
          3: "Analyzing", 4: "Analyzed", 5: "Queued for deployment", 6: "Deploying",
          7: "Unable to analyze"}
HEALTH = {0: "Unknown", 1: "Building", 2: "Impaired", 3: "Healthy", 4: "Failed"}
"""

# `igor list` of a few stacks, for a person: fetch the stacks, print the same rows (the same
# words, times and columns as igor's table piped), with the standard library alone.
_TABLE = (
    _WORDS
    + """
from datetime import datetime, timezone
now = datetime.now(timezone.utc)
def ago(iso):
    then = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    seconds = int((now - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return "just now" if seconds < 10 else f"{seconds}s ago"
rows = [("NAME", "ENVIRONMENT", "STATUS", "HEALTH", "LAST ACTIVITY", "LAST DEPLOY")]
for s in sorted(body["response"], key=lambda s: (s["name"].lower(), s["environment"].lower())):
    rows.append((s["name"], s["environment"], STATUS[s["status"]], HEALTH[s["health"]],
                 ago(s["last_activity_iso"]), "-"))
widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
for row in rows:
    print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)))
"""
)

URLLIB_LIST = (
    """
import json, sys
from urllib.request import Request, urlopen
url, token = sys.argv[1], sys.argv[2]
with urlopen(Request(url + "/stacks", headers={"Authorization": "Bearer " + token})) as r:
    body = json.loads(r.read())
"""
    + _TABLE
)

# The same with `requests`, what a person writing a script would likely reach for.
REQUESTS_LIST = (
    """
import sys
import requests
url, token = sys.argv[1], sys.argv[2]
session = requests.Session()
body = session.get(url + "/stacks", headers={"Authorization": "Bearer " + token}).json()
"""
    + _TABLE
)

# `igor list --json` of a big account: page 1, then every other page at once, the same
# JSON igor prints (compact, sorted as igor sorts), standard library only.
ALL_PAGES_JSON = (
    _WORDS
    + """
import json, sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from urllib.parse import quote, urlsplit
from urllib.request import Request, urlopen
url, token = sys.argv[1], sys.argv[2]
headers = {"Authorization": "Bearer " + token}
def page(number):
    with urlopen(Request(f"{url}/stacks?page={number}", headers=headers)) as answer:
        return json.loads(answer.read())
first = page(1)
pages = -(-first["count"] // 30)  # Cloud 66 sends the count, not the pages
with ThreadPoolExecutor(max_workers=max(1, pages - 1)) as pool:
    bodies = [first, *pool.map(page, range(2, pages + 1))]
split = urlsplit(url)
origin = f"{split.scheme}://{split.netloc}"
rows = []
for body in bodies:
    for s in body["response"]:
        when = s.get("last_activity_iso") or s.get("last_activity")
        rows.append({
            "uid": s["uid"], "name": s["name"], "environment": s["environment"],
            "status": s["status"], "status_text": STATUS[s["status"]],
            "health": s["health"], "health_text": HEALTH[s["health"]],
            "busy": bool(s.get("is_busy")) or s["status"] in (5, 6),
            "maintenance_mode": s.get("maintenance_mode") is True,
            "last_activity": datetime.fromisoformat(when.replace("Z", "+00:00")).isoformat(),
            "dashboard_url": f"{origin}/stacks/{quote(s['uid'], safe='')}",
            "deployments_read": False, "live_deployment": None, "last_deploy": None,
        })
rows.sort(key=lambda r: (r["name"].casefold(), r["environment"].casefold()))
sys.stdout.write(json.dumps(rows, separators=(",", ":")) + "\\n")
"""
)

# The least a Python program costs: the interpreter, without even `site`.
PYTHON_FLOOR = ("-S", "-c", "pass")
