"""AudienceStream: visitor profiles, visits, enrichments, audiences and their triggers.

The way of one event, in Tealium's order, inside the router's write transaction:

1. ``stage``: the event's visitor profile is loaded (``store``: a version-checked cache,
   locked rows on PostgreSQL); a visit that timed out meanwhile is ended first (``visits``).
2. ``rules``: the visitor attributes' rules (enrichments) change the profile.
3. ``membership``: audiences are evaluated over the enriched profile.
4. ``triggers``: actions whose source is an audience and a trigger fire, through consent
   and the frequency cap, as deliveries carrying the visitor context (``model``).

Visits that end without a further event are ended by ``AudienceStage.run_due``, which
the pipeline calls about once a second; it also fires delayed end-of-visit actions.
"""
