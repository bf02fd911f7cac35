from campaign_runner.cli import cli

cli()
