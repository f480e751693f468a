// Runs once, when the mongo container initialises an empty data volume (mounted into
// /docker-entrypoint-initdb.d/). The official image runs it against a temporary standalone
// server, after it created the root user, before the replica set exists.
//
// Creates the least-privilege user the Exporter services connect with: readWrite on the
// Exporter database only (documents, indexes, transactions and change streams need no more).
const username = process.env.MONGO_APP_USERNAME;
const password = process.env.MONGO_APP_PASSWORD;
const database = process.env.MONGO_APP_DATABASE;
if (!username || !password || !database) {
  throw new Error("MONGO_APP_USERNAME, MONGO_APP_PASSWORD and MONGO_APP_DATABASE must be set");
}
db.getSiblingDB(database).createUser({
  user: username,
  pwd: password,
  roles: [{ role: "readWrite", db: database }],
});
print(`created user ${username} with readWrite on ${database}`);
