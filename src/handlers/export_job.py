"""Lambda entry point of the job function: export and report jobs from the job queue (see
handlers.job_batch)."""

from handlers.job_batch import make_handler
from handlers.settings import get_settings
from handlers.wiring import build

handler = make_handler(build(get_settings()).jobs)
