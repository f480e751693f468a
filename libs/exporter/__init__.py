"""The library the five services share (``services/`` holds each service's own code).

What sits where, by layer (the README's Architecture section draws them):

- ``contracts/``: the shapes on the wire (HTTP bodies, Kafka events, ingest records).
- ``domain/``, ``rendering/``, ``notifications/``: rules as plain functions over data, with no
  I/O (schedule, access, quotas; file contents; message texts and delivery policy).
- ``adapters/``: the edges (MongoDB, Kafka, S3, SMTP, chat APIs); they hold no rule.
- ``local/``: the embedded servers and services for development and tests, never deployed.

A module sits at this top level only when it belongs to no one layer and serves more than one
service: the process-wide pieces (``settings``: the one settings object; ``topics``: every topic
name; ``runtime``: the bootstrap that builds each adapter once and starts and stops every
service; ``signing``: the rule for trusting a Kafka record, used by every producer and
consumer), and the service-layer steps several services take alike, which therefore use
adapters (``dispatch``: queuing and announcing jobs; ``outbox``: the relay; ``iam``: the
announcements the request-api and the scheduler make to the IAM service). Code that one service
alone uses lives in that service's package.

"Seed NNN" in a docstring cites ``docs/seeds/NNN.txt``, one of the documents the project started
from (``docs/seeds/README.md`` says what each is).
"""
