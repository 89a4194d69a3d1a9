"""Roles' rules and what they allow (messaging/service/access_control.go).

A part of the Workspace (models.py): one state object per tenant, made of these parts."""

from typing import TYPE_CHECKING

from mockserver.vendors.corteza.exceptions import corteza_error

if TYPE_CHECKING:
    from mockserver.vendors.corteza.models import Workspace

# Permission resources and the service-level checks (messaging/types/permission_resources.go and
# messaging/service/access_control.go, 2020.3.0-rc.3).
SERVICE_RESOURCE, CHANNEL_RESOURCE = "messaging", "messaging:channel:"

EFFECTIVE_OPERATIONS = ("access", "grant", "settings.read", "settings.manage", "channel.public.create",
                        "channel.private.create", "channel.group.create")

SERVICE_ALLOWED_WITHOUT_RULE = {"channel.public.create", "channel.private.create", "channel.group.create"}



def _without_id(resource: str) -> str:
    """A rule's resource as the whitelist names it: `messaging:channel:123` or `:*` is `messaging:channel:`."""
    if resource.startswith(CHANNEL_RESOURCE):
        rest = resource[len(CHANNEL_RESOURCE):]
        if rest == "*" or rest.isdigit():
            return CHANNEL_RESOURCE
    return resource


class Permissions:
    def _verdict(self: "Workspace", user_id: str, resources: tuple[str, ...], operation: str) -> str | None:
        """Rules of the user's roles, the most specific resource first; deny wins; None: no rule."""
        roles = self.users[user_id]["roles"]
        for resource in resources:
            verdicts = {self.rules.get(role, {}).get((resource, operation)) for role in roles} - {None}
            if verdicts:
                return "deny" if "deny" in verdicts else "allow"
        return None

    def can(self: "Workspace", user_id: str, channel_id: str, operation: str, fallback: bool = False) -> bool:
        """access_control.go can(): the channel's rule, else the wildcard's (deny wins among the
        user's roles), else the fallback the operation has in the source (none: denied)."""
        verdict = self._verdict(user_id, (f"{CHANNEL_RESOURCE}{channel_id}", f"{CHANNEL_RESOURCE}*"), operation)
        return verdict == "allow" if verdict else fallback

    def can_service(self: "Workspace", user_id: str, operation: str) -> bool:
        """A service-level operation: its rule, else the source's fallback (channel creation is
        allowed, everything else denied: access_control.go)."""
        verdict = self._verdict(user_id, (SERVICE_RESOURCE,), operation)
        return verdict == "allow" if verdict else operation in SERVICE_ALLOWED_WITHOUT_RULE

    def effective(self: "Workspace", user_id: str) -> list[dict]:
        """`Effective`: the caller's service-level permissions, whatever `resource` asks."""
        return [{"resource": SERVICE_RESOURCE, "operation": operation, "allow": self.can_service(user_id, operation)}
                for operation in EFFECTIVE_OPERATIONS]

    def whitelist(self: "Workspace") -> list[dict]:
        """What rules may name (`Whitelist().Flatten()`)."""
        return [{"resource": resource, "operation": operation}
                for resource, operations in self.fixtures["permissions"].items() for operation in operations]

    def role_rules(self: "Workspace", caller: str, role_id: str) -> list[dict]:
        """`FindRulesByRoleID`: needs `grant`; a role without rules (or unknown) has none."""
        if not self.can_service(caller, "grant"):
            raise corteza_error("messaging.service.NoPermissions")
        return [{"roleID": role_id, "resource": resource, "operation": operation, "access": access}
                for (resource, operation), access in self.rules.get(role_id, {}).items()]

    def update_rules(self: "Workspace", caller: str, role_id: str, rules: list[dict]) -> None:
        """`Grant`: needs `grant`; every rule within the whitelist or none applied; `inherit` (or
        any access but allow and deny) removes a rule."""
        if not self.can_service(caller, "grant"):
            raise corteza_error("messaging.service.NoGrantPermissions")
        allowed = self.fixtures["permissions"]
        for rule in rules:
            if rule["operation"] not in allowed.get(_without_id(rule["resource"]), ()):
                raise corteza_error(f"invalid rule: '{rule['operation']}' on '{rule['resource']}'")
        own = dict(self.rules.get(role_id, {}))  # rules are in the meta: replaced, never changed in place
        for rule in rules:
            key = (rule["resource"], rule["operation"])
            if rule["access"] in ("allow", "deny"):
                own[key] = rule["access"]
            else:
                own.pop(key, None)
        self.rules = {**self.rules, role_id: own}

    def clear_rules(self: "Workspace", caller: str, role_id: str) -> None:
        """`Delete`: the role's rules read (needs `grant`), then each set to inherit."""
        self.role_rules(caller, role_id)
        if role_id in self.rules:
            self.rules = {role: rules for role, rules in self.rules.items() if role != role_id}
