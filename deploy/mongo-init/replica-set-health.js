// The mongo service's health check (run with mongosh as the root user, see docker-compose.yml).
//
// On the first run it initiates the single-node replica set `rs0` (exactly once: once the set
// exists, rs.status() succeeds and nothing is re-initiated). It reports healthy only when this
// node is the writable primary, so services that wait for `service_healthy` can use
// transactions and change streams from their first connection.
const host = process.env.MONGO_REPLICA_SET_HOST || "mongo:27017";
try {
  rs.status();
} catch (error) {
  if (error.codeName !== "NotYetInitialized") {
    throw error;
  }
  rs.initiate({ _id: "rs0", members: [{ _id: 0, host: host }] });
}
if (!db.hello().isWritablePrimary) {
  quit(1);
}
