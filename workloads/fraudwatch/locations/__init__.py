"""Where fraudwatch's data lives and how it is written: its home folder (`home`), the secrets
directory (`secrets_dir`), a local directory or an S3 prefix (`storage`) and writes that appear
whole or not at all (`atomic`)."""
