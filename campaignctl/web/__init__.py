"""The web side (`campaignctl serve`): see `campaignctl.web.app`."""
