"""Transfer locations' adapters: sealing their credentials, and pushing files to S3, SFTP, HTTPS."""
