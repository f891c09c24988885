"""One valid `data` per event type, shaped like what the producing services send."""

import uuid

TENANT = str(uuid.UUID(int=7))
TASK = {"task_id": "41", "key": "DEMO-41", "project_id": "3", "board_id": "5", "column_id": "9"}

SAMPLES: dict[str, dict] = {
    "UserCreated": {"user_id": "12", "email": "ada@acme.test", "full_name": "Ada"},
    "UserUpdated": {"user_id": "12", "email": "ada@acme.test", "full_name": "Ada L.", "is_active": True,
                    "changed": ["full_name"]},
    "UserPermissionChanged": {"user_id": "12", "tenant_id": TENANT, "roles": ["member"], "permissions": ["comment"],
                              "reason": "role_changed"},
    "TenantCreated": {"tenant_id": TENANT, "slug": "acme", "name": "Acme", "isolation": "schema", "placement": None,
                      "owner_user_id": "12"},
    "TenantProvisioned": {"tenant_id": TENANT, "slug": "acme", "isolation": "schema", "schema_version": "0007"},
    "TenantProvisioningFailed": {"tenant_id": TENANT, "slug": "acme", "reason": "OperationalError: disk full"},
    "ProjectCreated": {"project_id": "3", "key": "DEMO", "name": "Demo", "created_by": "12"},
    "ProjectUpdated": {"project_id": "3", "key": "DEMO", "changes": ["name"]},
    "ProjectUserAdded": {"project_id": "3", "user_id": "12", "role": "manager"},
    "TaskCreated": {**TASK, "title": "Write the docs", "reporter_id": "12"},
    "TaskStatusChanged": {**TASK, "from_column_id": "9", "to_column_id": "10", "from_status": "todo",
                          "to_status": "doing"},
    "TaskAssigned": {**TASK, "assignees": ["12", "13"], "added": ["13"]},
    "TaskCommentAdded": {**TASK, "comment_id": "77", "author_id": "12"},
    "URLCreated": {"code": "Ab3dE", "target": "https://acme.example.com/tasks/41", "task_id": "41",
                   "expires_at": "2030-01-01T00:00:00Z", "max_visits": 10, "has_password": False, "created_by": "12"},
    "URLAccessed": {"code": "Ab3dE", "accessed_at": "2026-01-01T10:00:00+00:00", "referrer": None,
                    "user_agent": "curl/8", "visit_number": 1},
    "URLExpired": {"code": "Ab3dE", "reason": "max_visits"},
}  # fmt: skip
