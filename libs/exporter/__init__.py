"""The library the five services share (``services/`` holds each service's own code).

What sits where, by layer (the README's Architecture section draws them):

- ``contracts/``: the shapes on the wire (HTTP bodies, Kafka events, ingest records).
- ``domain/``, ``rendering/``, ``notifications/``: rules as plain functions over data, with no
  I/O (schedule, access, quotas; file contents; message texts and delivery policy).
- ``adapters/``: the edges (MongoDB, Kafka, S3, SMTP, chat APIs); they hold no rule.
- ``service_layer/``: the steps several services take alike, which therefore drive adapters: the
  unit of work (a transaction, its repositories, its events into the outbox), the outbox relay,
  queuing and announcing jobs (``dispatch``), the announcements to the IAM service (``iam``).
- ``local/``: the embedded servers and services for development and tests, never deployed.

A module sits at this top level only when it is process-wide and belongs to no layer:
``settings`` (the one settings object), ``topics`` (every topic name), ``runtime`` (the bootstrap
that builds each adapter once and starts and stops every service), ``signing`` (the rule for
trusting a Kafka record, used by every producer and consumer) and ``metrics`` (every Prometheus
metric family, in the process's registry, and how a process serves them). Code that one service alone uses
lives in that service's package.

"Seed NNN" in a docstring cites ``docs/seeds/NNN.txt``, one of the documents the project started
from (``docs/seeds/README.md`` says what each is).
"""
