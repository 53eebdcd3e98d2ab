"""rowferry on AWS Lambda: a handler run by EventBridge Scheduler, configured by environment.

    handler.py   the entry point, ``rowferry.aws.handler.handler(event, context)``
    config.py    the environment variables it reads, checked before anything is written
    secrets.py   database URLs from AWS Secrets Manager (RDS-style JSON secrets)
    schedule.py  disabling the EventBridge Scheduler schedule once the migration is done
    telemetry.py JSON logs and CloudWatch embedded metrics (AWS Lambda Powertools)
    context.py   a stand-in for Lambda's context object (tests, the simulator)
    invoke.py    ``python -m rowferry.aws.invoke``: one simulated invocation in a fresh process

Nothing here imports click or rich: the Lambda bundle does not need the CLI.
"""
