"""Tests of campaignctl.delivery: transports against real SMTP and HTTP servers."""
