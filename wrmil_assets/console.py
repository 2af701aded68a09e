"""The terminal's view of a ``wrmil run``: one short line per log message, no stack traces.

Dagster's default console logger prints a failed step's whole stack trace, then the run failure's
again. On the terminal ``wrmil run`` instead prints one line with the cause and the fix (see
``run.StageFailed``); the run's event log in ``DAGSTER_HOME`` keeps every trace for the UI.
"""

from __future__ import annotations

import logging
import sys
import time

import dagster as dg


class _TerminalFormatter(logging.Formatter):
    """``17:03:12 arcface_model: epoch 2/5 ...`` from Dagster's structured log record."""

    def format(self, record: logging.LogRecord) -> str:
        meta = getattr(record, "dagster_meta", None) or {}
        source = meta.get("step_key") or meta.get("job_name") or "dagster"
        message = meta.get("orig_message") or record.getMessage()
        level = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        return f"{time.strftime('%H:%M:%S', time.localtime(record.created))} {source}: {level}{message}"


class _NoErrors(logging.Filter):
    """Errors are summarised by the runner in one line; their traces stay in the run log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno < logging.ERROR


@dg.logger(
    {"log_level": dg.Field(str, is_required=False, default_value="INFO", description="The logger's threshold.")},
    description="wrmil's terminal logger: one line per message, failures summarised by the runner.",
)
def terminal_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    """A stderr logger at ``log_level`` that leaves errors to the runner's one-line summary."""
    level = logging.getLevelName(init_context.logger_config["log_level"].upper())
    logger = logging.Logger("wrmil", level=level if isinstance(level, int) else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_TerminalFormatter())
    handler.addFilter(_NoErrors())
    logger.addHandler(handler)
    return logger
