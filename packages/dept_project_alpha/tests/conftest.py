from airnub_platform.testing import start_session_api

# Boot the Prefect API while pytest imports the tests.
start_session_api()
