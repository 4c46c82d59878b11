"""The Python client of TaskDriver: HTTP only, no server code, light to import.

    from taskdriver.client import Client
    agent = Client("http://127.0.0.1:3000", agent_name="agent-1", project="my-project")
    task = agent.next_task(wait_seconds=30)
    if task:
        with agent.keep_lease(task):
            result = do_the_work(task["instructions"])
        agent.complete_task(task["id"], result)
"""

from .core import Client
from .errors import ApiError, ServerUnreachable
from .queue import LeaseKeeper
from .transport import DEFAULT_URL, check_url

__all__ = ["DEFAULT_URL", "ApiError", "Client", "LeaseKeeper", "ServerUnreachable",
           "check_url"]
