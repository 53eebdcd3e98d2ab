"""Disabling an EventBridge Scheduler schedule once its migration is done.

``UpdateSchedule`` replaces the whole schedule, so the schedule is read first and written back
with every field it had and ``State=DISABLED``. The function's role needs
``scheduler:GetSchedule`` and ``scheduler:UpdateSchedule`` on the schedule, and
``iam:PassRole`` on the role the schedule invokes the function with (the SAM template in
``deploy/`` grants exactly these).
"""

from __future__ import annotations

from typing import Any

from rowferry.aws.config import ScheduleRef
from rowferry.errors import RowferryError

#: The fields of GetSchedule's answer that UpdateSchedule takes back unchanged.
KEPT_FIELDS = (
    "ActionAfterCompletion",
    "Description",
    "EndDate",
    "FlexibleTimeWindow",
    "KmsKeyArn",
    "ScheduleExpression",
    "ScheduleExpressionTimezone",
    "StartDate",
    "Target",
)


class ScheduleError(RowferryError):
    """The schedule could not be read or disabled (it keeps firing; the handler returns at once)."""


def disable(schedule: ScheduleRef, client: Any = None) -> bool:
    """Disable ``schedule``; False when it was disabled already."""
    from botocore.exceptions import (  # type: ignore[import-untyped, unused-ignore]
        BotoCoreError,
        ClientError,
    )

    where = f"schedule {schedule.name!r} (group {schedule.group!r})"
    try:
        if client is None:
            from rowferry.aws.secrets import client as aws_client

            client = aws_client("scheduler")
        current = client.get_schedule(Name=schedule.name, GroupName=schedule.group)
        if current.get("State") == "DISABLED":
            return False
        kept = {k: current[k] for k in KEPT_FIELDS if current.get(k) is not None}
        client.update_schedule(
            Name=schedule.name, GroupName=schedule.group, State="DISABLED", **kept
        )
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise ScheduleError(
            f"cannot disable {where}: {code} (the function's role needs scheduler:GetSchedule, "
            "scheduler:UpdateSchedule and iam:PassRole on the schedule's role)"
        ) from exc
    except BotoCoreError as exc:
        raise ScheduleError(
            f"cannot reach EventBridge Scheduler to disable {where}: {exc}"
        ) from exc
    return True
