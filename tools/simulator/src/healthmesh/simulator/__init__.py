"""A stand-in for Oura, WHOOP, Fitbit (Google Health API), Withings and Strava: their real OAuth2
dances and data formats, deterministic data, rate limits, faults and webhooks, in one process."""
