"""The platform's own tests share one session Prefect API, started while pytest imports them."""

from airnub_platform.testing import start_session_api

start_session_api()
