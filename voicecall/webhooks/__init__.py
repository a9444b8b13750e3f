"""Outbound webhooks, as both sides need them: where a webhook may go (the policy, URLs and
addresses checked at intake and again at delivery) and how it is signed (Standard Webhooks).
The worker delivers them (worker.webhooks); nothing here sends anything."""
