#!/bin/sh
# One-shot set-up of the object store, run by the `minio-init` service (minio/mc image).
# Idempotent: safe on every `docker compose up`.
#   1. creates the export bucket;
#   2. creates the services' own user, whose policy allows only that bucket.
# The services never see the MinIO root credentials.
set -eu

: "${MINIO_ROOT_USER:?}" "${MINIO_ROOT_PASSWORD:?}"
: "${STORAGE_BUCKET:?}" "${STORAGE_ACCESS_KEY:?}" "${STORAGE_SECRET_KEY:?}"
if [ "$STORAGE_ACCESS_KEY" = "$MINIO_ROOT_USER" ]; then
  echo "STORAGE_ACCESS_KEY must differ from MINIO_ROOT_USER" >&2
  exit 1
fi

mc alias set store http://minio:9000 "$MINIO_ROOT_USER" "$MINIO_ROOT_PASSWORD"
mc mb --ignore-existing "store/$STORAGE_BUCKET"

policy_file="$(mktemp)"
cat > "$policy_file" <<POLICY
{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Effect": "Allow",
      "Action": ["s3:*"],
      "Resource": ["arn:aws:s3:::$STORAGE_BUCKET", "arn:aws:s3:::$STORAGE_BUCKET/*"]
    }
  ]
}
POLICY
mc admin policy create store exporter-bucket "$policy_file"
rm -f "$policy_file"

mc admin user add store "$STORAGE_ACCESS_KEY" "$STORAGE_SECRET_KEY"
# Attaching an already attached policy is an error in mc; accept it only if it really is attached.
if ! mc admin policy attach store exporter-bucket --user "$STORAGE_ACCESS_KEY"; then
  mc admin user info store "$STORAGE_ACCESS_KEY" | grep -q exporter-bucket
fi
echo "bucket $STORAGE_BUCKET and user $STORAGE_ACCESS_KEY are ready"
