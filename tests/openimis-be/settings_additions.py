# --- imis-gateway test setup (tests/openimis-be/settings_additions.py), inserted by setup.sh
# right after load_dotenv(): openimis-be-core 1.11 reads these while settings.py is still
# importing the apps, so neither .env nor a wrapper settings module is early enough.
# IS_TESTING=True skips the CSRF session check and the user cache; the GraphQL peer keeps
# the real flow (False). The object cache stays off by default so rows written by SQL are
# never served stale.
IS_TESTING = os.environ.get("IS_TESTING", "False").lower() == "true"
CACHE_OBJECT_DEFAULT = os.environ.get("CACHE_OBJECT_DEFAULT", "False").lower() == "true"
CACHE_OBJECT_TTL = int(os.environ.get("CACHE_OBJECT_TTL", "60"))
# --- end of imis-gateway test setup
