"""The Bicep templates, checked on the model pycep-parser builds from them.

Each test names the property of the deployment it protects (see docs/deploy.md for the why).
"""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any

from tests.infra.settings import APP_PREFIXES, COMPUTED, NOT_SET_IN_AZURE, code_settings
from tests.support.bicep import (
    INFRA,
    REPO_ROOT,
    accessor,
    condition,
    config,
    decorator,
    keyed,
    one_resource,
    param_default,
    pretty,
    resources_of_type,
    strings,
    variable,
    walk,
)

Model = dict[str, Any]
Models = dict[str, Model]

ROLE_IDS = {  # from docs/design.md and Azure's built-in role list
    "acrPush": "8311e382-0749-4cb8-b61a-304f252e45ec",
    "acrDelete": "c2f4ef07-c644-48eb-af81-4b1b4947fb11",
    "repositoryWriter": "2a1e307c-b015-4ebd-883e-5b7698a07328",
    "repositoryContributor": "2efddaa5-3f1f-4df3-97df-af3f13818f4c",
    "catalogLister": "bfdb9389-c9a5-478a-bb2f-ba9ca092c3c7",
    "storageBlobDataContributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "storageBlobDataOwner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "storageQueueDataContributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "storageTableDataContributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "monitoringMetricsPublisher": "3913510d-42f4-4e42-8a64-420c390055eb",
}
OPTIONAL_SETTING_VARIABLES = (
    "retagRepositoriesSetting",
    "retagExcludeSetting",
    "pruneRepositoriesSetting",
    "fluxReceiverUrlSetting",
    "fluxReceiverTokenSetting",
    "eventsTopicSetting",
)
AZD_PLACEHOLDER = re.compile(r"^\$\{([A-Z][A-Z0-9_]*)\}$")


def not_(expr: Any) -> dict[str, Any]:
    return {"operator": {"type": "not", "operands": {"bool_value": expr}}}


def and_(left: Any, right: Any) -> dict[str, Any]:
    return {"operator": {"type": "and", "operands": {"operand_1": left, "operand_2": right}}}


def equals(left: Any, right: Any) -> dict[str, Any]:
    return {"operator": {"type": "equals", "operands": {"operand_1": left, "operand_2": right}}}


def role_id_of(model: Model, assignment: Model) -> str:
    """The role definition GUID of a role assignment, resolving `roles.x` / plain variables."""
    function = config(assignment)["properties"]["roleDefinitionId"]["function"]
    assert function["type"] == "subscription_resource_id", pretty(function)
    parameters = function["parameters"]
    assert parameters["resource_type"] == "Microsoft.Authorization/roleDefinitions"
    name = accessor(parameters["resource_name_1"])
    assert name is not None, pretty(parameters)
    if "." in name:
        table, key = name.split(".", 1)
        return str(variable(model, table)[key])
    if name in model.get("variables", {}):
        return str(variable(model, name))
    return name


def parameters_file() -> dict[str, str]:
    """main.parameters.json as {bicep parameter: azd environment variable}."""
    document = json.loads((INFRA / "main.parameters.json").read_text())
    mapping = {}
    for name, entry in document["parameters"].items():
        match = AZD_PLACEHOLDER.match(entry["value"])
        assert match, f"{name}: expected a plain ${{VARIABLE}}, got {entry['value']!r}"
        mapping[name] = match.group(1)
    return mapping


def settings_set_by_infra(bicep: Models) -> dict[str, Any]:
    """Every application setting the templates set: main.bicep's settings + function.bicep's."""
    main = bicep["main.bicep"]
    settings: dict[str, Any] = dict(variable(main, "requiredSettings"))
    for name in OPTIONAL_SETTING_VARIABLES:
        operands = variable(main, name)["operator"]["operands"]
        assert operands["true_value"] == {}, f"{name} must be empty when unset"
        settings.update(operands["false_value"])
    union = config(one_resource(bicep["app/function.bicep"], "Microsoft.Web/sites/config"))
    arguments = union["properties"]["function"]["parameters"]
    assert arguments["arg_1"] == "retagSettings", "the app settings must start from retagSettings"
    settings.update(arguments["arg_2"])
    return settings


# --- structure ---------------------------------------------------------------------------------


def test_every_template_parses(bicep: Models) -> None:
    assert set(bicep) >= {
        "main.bicep",
        "subscription.bicep",
        "app/function.bicep",
        "app/identity.bicep",
        "app/roles.bicep",
        "app/registry-roles.bicep",
        "core/storage.bicep",
        "core/monitoring.bicep",
        "core/registry.bicep",
        "core/eventgrid.bicep",
        "core/deadletter-role.bicep",
    }
    for name, model in bicep.items():
        assert model.get("resources") or model.get("modules"), f"{name} declares nothing"


def test_modules_exist_and_get_exactly_their_parameters(bicep: Models) -> None:
    """What `bicep build` checks: module paths resolve, params exist, required ones are given."""
    checked = 0
    for name, model in bicep.items():
        for module_name, module in model.get("modules", {}).items():
            assert module["type"] == "local", f"{name}:{module_name} must be a local file"
            target = (Path(name).parent / module["detail"]["path"]).as_posix()
            assert target in bicep, f"{name}:{module_name} -> {target} does not exist"
            declared = bicep[target]["parameters"]
            given = set(config(module).get("params", {}))
            assert given <= set(declared), (
                f"{name}:{module_name} passes unknown {given - set(declared)}"
            )
            required = {p for p, spec in declared.items() if spec.get("default") is None}
            assert required <= given, f"{name}:{module_name} misses {required - given}"
            checked += 1
    assert checked >= 9  # every module of main, subscription and eventgrid


OPERATOR_BEFORE = ("==", "!=", "&&", "||", "!", "<", ">")


def unparenthesised_condition(code: str, question: int) -> bool:
    """True when the condition left of the `?` at `question` is a bare operator expression."""
    text = code[:question].rstrip()
    end = len(text)
    if text.endswith(")"):
        depth, start = 0, end - 1
        while start >= 0:
            depth += {")": 1, "(": -1}.get(text[start], 0)
            if depth == 0:
                break
            start -= 1
        while start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_."):
            start -= 1  # a function call is one operand
    else:
        start = end
        while start > 0 and (text[start - 1].isalnum() or text[start - 1] in "_.'$"):
            start -= 1
    return text[:start].rstrip().endswith(OPERATOR_BEFORE)


def test_conditions_are_parenthesised_where_pycep_would_misread_them() -> None:
    """pycep parses `!a && b` as `!(a && b)` and `a == b ? x : y` as `a == (b ? x : y)`; Bicep does
    not. Parenthesised conditions read the same to both, so the tests below see what ARM sees."""
    offenders = []
    for path in sorted(INFRA.rglob("*.bicep")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("//", 1)[0]
            negated = re.search(r"!\s*[\w.]+(\([^()]*\))?\s*(&&|\|\|)", code)
            ternaries = [m.start() for m in re.finditer(r"\s\?\s", code)]
            if negated or any(unparenthesised_condition(code, at) for at in ternaries):
                offenders.append(f"{path.relative_to(INFRA)}:{number}: {line.strip()}")
    assert not offenders, "parenthesise these conditions:\n" + "\n".join(offenders)


def test_the_parenthesis_check_catches_what_pycep_misreads() -> None:
    assert unparenthesised_condition("x: a == 'b' ? c : d", 11)
    assert unparenthesised_condition("x: a || empty(b) ? c : d", 16)
    assert unparenthesised_condition("x: !empty(b) ? c : d", 12)
    assert not unparenthesised_condition("x: (a == 'b') ? c : d", 13)
    assert not unparenthesised_condition("x: empty(b) ? c : d", 11)
    assert not unparenthesised_condition("x: flag ? c : d", 7)


# --- phase 1: the Function App ---------------------------------------------------------------


def test_function_app_is_flex_consumption_python_311_https_only(bicep: Models) -> None:
    function = bicep["app/function.bicep"]
    plan = config(one_resource(function, "Microsoft.Web/serverfarms"))
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["properties"]["reserved"] is True  # Linux

    app = config(one_resource(function, "Microsoft.Web/sites"))
    assert app["kind"] == "functionapp,linux"
    properties = app["properties"]
    assert properties["httpsOnly"] is True
    assert properties["siteConfig"]["minTlsVersion"] == "1.2"
    assert properties["siteConfig"]["ftpsState"] == "Disabled"
    flex = properties["functionAppConfig"]
    assert flex["runtime"] == {"name": "python", "version": "3.11"}
    storage = flex["deployment"]["storage"]
    assert storage["type"] == "blobContainer"
    assert storage["authentication"] == {
        "type": "UserAssignedIdentity",
        "userAssignedIdentityResourceId": "identityId",
    }
    assert app["identity"]["type"] == "UserAssigned"
    assert list(app["identity"]["userAssignedIdentities"]) == ["'${identityId}'"]


def test_basic_publishing_credentials_are_disabled(bicep: Models) -> None:
    policies = resources_of_type(
        bicep["app/function.bicep"], "Microsoft.Web/sites/basicPublishingCredentialsPolicies"
    )
    assert {config(p)["name"]: config(p)["properties"]["allow"] for p in policies.values()} == {
        "ftp": False,
        "scm": False,
    }


def test_host_storage_and_telemetry_use_the_identity(bicep: Models) -> None:
    """Host storage by service URIs (they carry the cloud's endpoint suffix, so sovereign clouds
    work), as Azure-Samples/functions-quickstart-python-azd-eventgrid-blob sets them."""
    settings = settings_set_by_infra(bicep)
    for service in ("blob", "queue", "table"):
        assert accessor(settings[f"AzureWebJobsStorage__{service}ServiceUri"]) == (
            f"storage.properties.primaryEndpoints.{service}"
        )
    assert "AzureWebJobsStorage__accountName" not in settings  # implies the public cloud suffix
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings["AzureWebJobsStorage__clientId"] == "identityClientId"
    assert settings["AZURE_CLIENT_ID"] == "identityClientId"
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == (
        "Authorization=AAD;ClientId=${identityClientId}"
    )
    assert "APPLICATIONINSIGHTS_CONNECTION_STRING" in settings
    assert "AzureWebJobsStorage" not in settings  # a connection string would carry the account key
    for name in settings:
        assert not re.search(r"KEY|SECRET|PASSWORD|SAS", name.upper()), name


def test_every_setting_the_code_reads_is_set_and_every_app_setting_set_is_read(
    bicep: Models,
) -> None:
    read = code_settings()
    set_ = settings_set_by_infra(bicep)
    missing = set(read) - set(set_) - set(NOT_SET_IN_AZURE)
    assert not missing, f"settings the code reads but the app never gets: {sorted(missing)}"
    unknown = {name for name in set_ if name.startswith(APP_PREFIXES)} - set(read)
    assert not unknown, f"settings the app gets but the code never reads: {sorted(unknown)}"
    assert set(NOT_SET_IN_AZURE).isdisjoint(set_)


def test_setting_parameters_default_to_the_code_defaults(bicep: Models) -> None:
    """Each app setting comes from a parameter of main.bicep whose default is the code's default,
    mapped in main.parameters.json from the azd environment variable of the same name."""
    main = bicep["main.bicep"]
    read = code_settings()
    by_variable = {variable_: param for param, variable_ in parameters_file().items()}
    compared = 0
    for name, default in read.items():
        if name in COMPUTED or name in NOT_SET_IN_AZURE:
            continue
        assert name in by_variable, f"main.parameters.json does not map ${{{name}}}"
        param = by_variable[name]
        assert param_default(main, param) == (default or ""), f"{param} (for {name})"
        compared += 1
    assert compared == len(read) - len(set(read) & (set(COMPUTED) | set(NOT_SET_IN_AZURE)))


def test_optional_settings_are_left_unset_when_empty(bicep: Models) -> None:
    """An empty app setting is not the same as an unset one; unset means the code's default."""
    main = bicep["main.bicep"]
    optional = {name for name, default in code_settings().items() if default is None}
    optional -= set(COMPUTED) | set(NOT_SET_IN_AZURE)
    required = set(variable(main, "requiredSettings"))
    assert optional.isdisjoint(required)
    assert optional <= set(settings_set_by_infra(bicep))


def test_allowed_values_match_the_code(bicep: Models) -> None:
    main = bicep["main.bicep"]
    assert decorator(main, "acrCredential", "allowed") == ["default", "anonymous"]
    assert decorator(main, "pruneMode", "allowed") == ["off", "dry-run", "delete"]
    assert decorator(main, "pruneScope", "allowed") == ["generated", "all"]
    assert decorator(main, "reconcileMode", "allowed") == ["off", "dry-run", "apply"]
    assert decorator(main, "pruneUntagged", "allowed") == ["true", "false"]


def test_function_names_match_the_app(bicep: Models) -> None:
    """The subscription targets on_image_pushed; the timers read their schedules from settings."""
    assert variable(bicep["main.bicep"], "functionName") == "on_image_pushed"
    import function_app

    # A fresh worker indexes a freshly imported app once (an app refuses a second indexing).
    fresh = importlib.reload(function_app)
    functions = {f.get_function_name(): f for f in fresh.app.get_functions()}
    assert set(functions) == {"on_image_pushed", "prune_tags", "reconcile_tags"}
    trigger = json.loads(functions["on_image_pushed"].get_function_json())["bindings"]
    assert [binding["type"] for binding in trigger] == ["eventGridTrigger"]
    for name, setting in (
        ("prune_tags", "PRUNE_SCHEDULE"),
        ("reconcile_tags", "RECONCILE_SCHEDULE"),
    ):
        (timer,) = json.loads(functions[name].get_function_json())["bindings"]
        assert timer["type"] == "timerTrigger"
        assert timer["schedule"] == f"%{setting}%"


# --- phase 1: storage, monitoring, registry -------------------------------------------------


def test_storage_allows_identity_access_only(bicep: Models) -> None:
    properties = config(
        one_resource(bicep["core/storage.bicep"], "Microsoft.Storage/storageAccounts")
    )["properties"]
    assert properties["allowSharedKeyAccess"] is False
    assert properties["allowBlobPublicAccess"] is False
    assert properties["minimumTlsVersion"] == "TLS1_2"
    assert properties["supportsHttpsTrafficOnly"] is True
    assert properties["defaultToOAuthAuthentication"] is True
    containers = resources_of_type(
        bicep["core/storage.bicep"], "Microsoft.Storage/storageAccounts/blobServices/containers"
    )
    assert {config(c)["properties"]["publicAccess"] for c in containers.values()} == {"None"}
    assert {config(c)["name"] for c in containers.values()} == {
        "deploymentContainerName",
        "deadLetterContainerName",
    }


def test_monitoring_accepts_entra_authentication_only(bicep: Models) -> None:
    model = bicep["core/monitoring.bicep"]
    insights = config(one_resource(model, "Microsoft.Insights/components"))["properties"]
    assert insights["DisableLocalAuth"] is True
    assert accessor(insights["WorkspaceResourceId"]) == "logAnalytics.id"
    workspace = config(one_resource(model, "Microsoft.OperationalInsights/workspaces"))[
        "properties"
    ]
    assert workspace["features"]["disableLocalAuth"] is True


def test_no_admin_user_anonymous_pull_shared_key_or_local_auth_anywhere(bicep: Models) -> None:
    seen = set()
    for model in bicep.values():
        for entry in model.get("resources", {}).values():
            for key, wanted in (
                ("adminUserEnabled", False),
                ("anonymousPullEnabled", False),
                ("allowSharedKeyAccess", False),
                ("allowBlobPublicAccess", False),
                ("disableLocalAuth", True),
                ("DisableLocalAuth", True),
            ):
                for value in keyed(entry, key):
                    assert value is wanted, f"{key}: {value!r}"
                    seen.add(key)
    assert seen == {
        "adminUserEnabled",
        "anonymousPullEnabled",
        "allowSharedKeyAccess",
        "allowBlobPublicAccess",
        "disableLocalAuth",
        "DisableLocalAuth",
    }


def test_registry_is_created_only_when_asked(bicep: Models) -> None:
    main = bicep["main.bicep"]
    assert param_default(main, "createRegistry") is False
    assert condition(main["modules"]["newRegistry"]) == "createRegistry"
    existing = main["resources"]["existingRegistry"]
    assert existing["existing"] is True
    assert condition(existing) == not_("createRegistry")
    registry = config(
        one_resource(bicep["core/registry.bicep"], "Microsoft.ContainerRegistry/registries")
    )
    assert registry["properties"]["adminUserEnabled"] is False
    assert param_default(bicep["core/registry.bicep"], "sku") == "Standard"
    assert param_default(main, "registrySku") == "Standard"


def test_phase_1_deploys_nothing_into_the_registry_resource_group(bicep: Models) -> None:
    """azd down deletes every resource group its deployment deployed into. Phase 1 only *reads*
    an existing registry, so azd down can never delete the registry's resource group."""
    main = bicep["main.bicep"]
    for name, module in main["modules"].items():
        assert config(module)["scope"] == "rg", f"module {name} must deploy into the app's group"
    for name, entry in main["resources"].items():
        if entry["existing"]:
            continue
        assert entry["type"] == "Microsoft.Resources/resourceGroups", f"{name} outside a module"


def test_host_roles_are_the_ones_the_functions_host_needs(bicep: Models) -> None:
    model = bicep["app/roles.bicep"]
    assignments = resources_of_type(model, "Microsoft.Authorization/roleAssignments")
    granted = {role_id_of(model, a): config(a)["scope"] for a in assignments.values()}
    assert granted == {
        ROLE_IDS["storageBlobDataOwner"]: "storage",
        ROLE_IDS["storageQueueDataContributor"]: "storage",
        ROLE_IDS["storageTableDataContributor"]: "storage",
        ROLE_IDS["monitoringMetricsPublisher"]: "applicationInsights",
    }
    for assignment in assignments.values():
        assert config(assignment)["properties"]["principalType"] == "ServicePrincipal"


# --- phase 2: registry roles ------------------------------------------------------------------


def test_registry_roles_are_least_privilege_in_both_modes(bicep: Models) -> None:
    model = bicep["app/registry-roles.bicep"]
    assert variable(model, "canDelete") == equals("pruneMode", "delete")
    assert variable(model, "abac") == equals("roleMode", "abac")
    assignments = resources_of_type(model, "Microsoft.Authorization/roleAssignments")
    by_role = {role_id_of(model, a): condition(a) for a in assignments.values()}
    assert by_role == {
        ROLE_IDS["acrPush"]: not_("abac"),
        ROLE_IDS["acrDelete"]: and_(not_("abac"), "canDelete"),
        ROLE_IDS["repositoryWriter"]: "abac",
        ROLE_IDS["repositoryContributor"]: and_("abac", "canDelete"),
        ROLE_IDS["catalogLister"]: "abac",
    }
    for assignment in assignments.values():
        properties = config(assignment)["properties"]
        assert properties["principalType"] == "ServicePrincipal"
        assert config(assignment)["scope"] == "registry"


def test_abac_roles_can_be_conditioned_to_a_repository_prefix(bicep: Models) -> None:
    model = bicep["app/registry-roles.bicep"]
    prefix = variable(model, "prefixMatch")
    assert prefix == (
        "@Request[Microsoft.ContainerRegistry/registries/repositories:name] "
        "StringStartsWithIgnoreCase \\'${repositoryPrefix}\\'"
    )
    writer, contributor = (
        variable(model, "writerCondition"),
        variable(model, "contributorCondition"),
    )
    for text in (writer, contributor):
        assert text.endswith("OR (${prefixMatch}))")
        for action in ("content/read", "content/write", "metadata/read", "metadata/write"):
            assert f"repositories/{action}" in text
    assert "delete" not in writer
    assert "repositories/content/delete" in contributor
    assert "repositories/metadata/delete" in contributor
    conditioned = {
        name: config(a)["properties"]
        for name, a in resources_of_type(model, "Microsoft.Authorization/roleAssignments").items()
        if "condition" in config(a)["properties"]
    }
    assert set(conditioned) == {"repositoryWriter", "repositoryContributor"}
    for name, properties in conditioned.items():
        operands = properties["condition"]["operator"]["operands"]
        assert operands["condition"] == "conditioned"
        assert operands["false_value"] is None  # no prefix: registry-wide, no condition
        assert operands["true_value"] == f"{name.removeprefix('repository').lower()}Condition"
        assert properties["conditionVersion"]["operator"]["operands"]["true_value"] == "2.0"


def test_delete_role_follows_prune_mode(bicep: Models) -> None:
    main = bicep["main.bicep"]
    assert param_default(main, "pruneMode") == "dry-run"  # no delete role by default
    wiring = main["outputs"]["AZURE_WIRING_PARAMETERS"]["value"]
    assert wiring["pruneMode"] == {"value": "pruneMode"}
    assert variable(main, "requiredSettings")["PRUNE_MODE"] == "pruneMode"  # one switch for both


# --- phase 2: Event Grid ----------------------------------------------------------------------


def test_event_subscription_filters_exact_source_tags_of_image_pushed(bicep: Models) -> None:
    model = bicep["core/eventgrid.bicep"]
    subscription = config(
        one_resource(model, "Microsoft.EventGrid/systemTopics/eventSubscriptions")
    )["properties"]
    assert subscription["eventDeliverySchema"] == "EventGridSchema"
    assert subscription["filter"] == {
        "includedEventTypes": ["Microsoft.ContainerRegistry.ImagePushed"],
        "advancedFilters": [
            {"operatorType": "StringIn", "key": "data.target.tag", "values": "sourceTags"}
        ],
    }
    assert model["parameters"]["sourceTags"]["type"] == "array"
    assert subscription["retryPolicy"] == {
        "maxDeliveryAttempts": 30,
        "eventTimeToLiveInMinutes": 1440,
    }


def test_no_prefix_or_subject_filter_anywhere(bicep: Models) -> None:
    """Generated tags start with the source tag and our own PUT emits ImagePushed: a prefix
    filter would loop."""
    for name, model in bicep.items():
        for text in strings(model):
            assert "BeginsWith" not in text, f"{name}: {text}"
        for key in ("subjectBeginsWith", "subjectEndsWith"):
            assert not list(keyed(model, key)), f"{name}: {key}"


def test_source_tags_reach_the_filter_from_the_same_setting(bicep: Models) -> None:
    main = bicep["main.bicep"]
    wiring = main["outputs"]["AZURE_WIRING_PARAMETERS"]["value"]
    split = wiring["sourceTags"]["value"]["function"]
    assert split["type"] == "split"
    assert split["parameters"]["delimiter"] == ","
    assert (
        split["parameters"]["input_string"]["function"]["parameters"]["original_string"]
        == "sourceTags"
    )
    assert variable(main, "requiredSettings")["RETAG_SOURCE_TAGS"] == "sourceTags"
    events = bicep["subscription.bicep"]["modules"]["events"]
    assert config(events)["params"]["sourceTags"] == "sourceTags"
    assert bicep["subscription.bicep"]["parameters"]["sourceTags"]["default"] == ["latest"]


def test_events_go_to_the_function_one_at_a_time(bicep: Models) -> None:
    model = bicep["core/eventgrid.bicep"]
    assert param_default(model, "endpointType") == "AzureFunction"
    function = variable(model, "azureFunctionDestination")
    assert function == {
        "endpointType": "AzureFunction",
        "properties": {
            "resourceId": "${functionApp.id}/functions/${functionName}",
            "maxEventsPerBatch": 1,
            "preferredBatchSizeInKilobytes": 64,
        },
    }
    webhook = variable(model, "webHookDestination")
    assert webhook["endpointType"] == "WebHook"
    assert webhook["properties"]["maxEventsPerBatch"] == 1
    url = webhook["properties"]["endpointUrl"]
    assert url.startswith(
        "https://${functionApp.properties.defaultHostName}/runtime/webhooks/eventgrid?"
    )
    assert "functionName=${functionName}&code=${listKeys(" in url
    assert ".systemKeys.eventgrid_extension}" in url
    destination = config(
        one_resource(model, "Microsoft.EventGrid/systemTopics/eventSubscriptions")
    )["properties"]["destination"]["operator"]["operands"]
    assert destination == {
        "condition": equals("endpointType", "AzureFunction"),
        "true_value": "azureFunctionDestination",
        "false_value": "webHookDestination",
    }


def test_dead_letters_go_to_a_blob_container_with_the_topic_identity(bicep: Models) -> None:
    model = bicep["core/eventgrid.bicep"]
    properties = config(one_resource(model, "Microsoft.EventGrid/systemTopics/eventSubscriptions"))[
        "properties"
    ]
    chosen = properties["deadLetterWithResourceIdentity"]["operator"]["operands"]
    assert chosen == {
        "condition": "deadLettering",
        "true_value": "deadLetterWithIdentity",
        "false_value": None,  # an existing topic without identity cannot dead-letter
    }
    assert variable(model, "deadLettering") == {
        "operator": {
            "type": "not_equals",
            "operands": {"operand_1": "deadLetterIdentity", "operand_2": "None"},
        }
    }
    dead_letter = variable(model, "deadLetterWithIdentity")
    assert dead_letter["identity"]["operator"]["operands"] == {
        "condition": equals("deadLetterIdentity", "UserAssigned"),
        "true_value": "userAssignedDeadLetter",
        "false_value": "systemAssignedDeadLetter",
    }
    assert variable(model, "systemAssignedDeadLetter") == {"type": "SystemAssigned"}
    assert variable(model, "userAssignedDeadLetter") == {
        "type": "UserAssigned",
        "userAssignedIdentity": "deadLetterIdentityId",
    }
    destination = dead_letter["deadLetterDestination"]
    assert destination["endpointType"] == "StorageBlob"
    assert accessor(destination["properties"]["resourceId"]) == "deadLetterStorage.id"
    assert destination["properties"]["blobContainerName"] == "deadLetterContainerName"
    assert "deadLetterDestination" not in properties  # the key-based variant

    topic = config(one_resource(model, "Microsoft.EventGrid/systemTopics"))
    assert topic["identity"] == {"type": "SystemAssigned"}
    assert topic["properties"] == {
        "source": "registryId",
        "topicType": "Microsoft.ContainerRegistry.Registries",
    }
    assert condition(model["modules"]["deadLetterRole"]) == "deadLettering"
    role_module = config(model["modules"]["deadLetterRole"])
    assert role_module["params"]["principalId"] == "topicPrincipalId"
    assert role_module["params"]["containerName"] == "deadLetterContainerName"

    roles = bicep["core/deadletter-role.bicep"]
    assignment = one_resource(roles, "Microsoft.Authorization/roleAssignments")
    assert role_id_of(roles, assignment) == ROLE_IDS["storageBlobDataContributor"]
    assert config(assignment)["scope"] == "container"  # the container only, not the account


def test_phase_2_gets_exactly_its_parameters_from_phase_1(bicep: Models) -> None:
    """Phase 2's parameters come from phase 1's AZURE_WIRING_PARAMETERS output, plus the ones
    the postdeploy hook adds on its command line (what it found at deploy time)."""
    wiring = bicep["main.bicep"]["outputs"]["AZURE_WIRING_PARAMETERS"]["value"]
    declared = bicep["subscription.bicep"]["parameters"]
    from_hook = hook_parameters()
    assert from_hook == set(HOOK_PARAMETERS)
    assert not from_hook & set(wiring), "each parameter has one source"
    assert set(wiring) | from_hook <= set(declared), set(wiring) - set(declared)
    required = {name for name, spec in declared.items() if spec.get("default") is None}
    assert required <= set(wiring) | from_hook, required - set(wiring)
    for name, entry in wiring.items():
        assert set(entry) == {"value"}, name
    assert bicep["subscription.bicep"]["globals"]["scope"]["value"] == "resourceGroup"
    assert bicep["main.bicep"]["globals"]["scope"]["value"] == "subscription"


HOOK_PARAMETERS = (
    "environmentHash",
    "systemTopicName",
    "systemTopicResourceGroup",
    "createSystemTopic",
    "deadLetterIdentity",
    "deadLetterIdentityId",
    "deadLetterPrincipalId",
)


def hook_parameters() -> set[str]:
    """The `name=value` parameters postdeploy.sh passes after `--parameters "@$parameters"`."""
    text = (INFRA / "hooks" / "postdeploy.sh").read_text()
    command = text[text.index("az deployment group create") :]
    command = command[: command.index("--output none")]
    after_file = command[command.index('--parameters "@$parameters"') :]
    return set(re.findall(r'\b([a-zA-Z]+)="', after_file))


# --- outputs and parameters ------------------------------------------------------------------


def test_no_secret_or_key_in_any_output(bicep: Models) -> None:
    for name, model in bicep.items():
        for output_name, output in model.get("outputs", {}).items():
            assert not re.search(r"KEY|SECRET|PASSWORD|CONNECTION", output_name.upper()), (
                output_name
            )
            assert output_name != "AZURE_CLIENT_ID"  # would steer DefaultAzureCredential locally
            for node in walk(output):
                if isinstance(node, dict) and "function" in node:
                    assert node["function"]["type"] != "list_func", f"{name}:{output_name}"
            for text in strings(output):
                assert not re.search(r"listKeys|listSecrets|ConnectionString|primaryKey", text), (
                    f"{name}:{output_name}"
                )


def test_keys_are_read_only_for_the_webhook_fallback(bicep: Models) -> None:
    users = []
    for name, model in bicep.items():
        for node in walk(model):
            if isinstance(node, dict) and node.get("function", {}).get("type") == "list_func":
                users.append(name)
            if isinstance(node, str) and "listKeys(" in node:
                users.append(name)
    assert users == ["core/eventgrid.bicep"]


def test_parameters_file_maps_azd_environment_variables(bicep: Models) -> None:
    main = bicep["main.bicep"]
    mapping = parameters_file()
    assert mapping["environmentName"] == "AZURE_ENV_NAME"
    assert mapping["location"] == "AZURE_LOCATION"
    assert set(mapping) <= set(main["parameters"])
    unmapped = {name for name, spec in main["parameters"].items() if name not in mapping}
    assert not unmapped, f"parameters azd cannot set: {sorted(unmapped)}"
    assert len(set(mapping.values())) == len(mapping)
    # Without a default azd prompts for the value; only the registry name is that essential.
    assert {name for name, spec in main["parameters"].items() if spec.get("default") is None} == {
        "environmentName",
        "location",
        "registryName",
    }


def test_deploy_doc_names_every_azd_variable() -> None:
    """docs/deploy.md names every variable azd can set, so a reader can find each switch."""
    text = (REPO_ROOT / "docs" / "deploy.md").read_text()
    missing = [
        variable_ for variable_ in parameters_file().values() if f"`{variable_}`" not in text
    ]
    assert not missing, f"docs/deploy.md does not mention {missing}"


# --- issue 15: limits, resource group, cross-subscription, optional wiring ------------------------


def test_maximum_instance_count_is_at_least_40_default_100(bicep: Models) -> None:
    """Flex Consumption rejects maximumInstanceCount below 40 outside preview regions
    (docs/design.md section 4, Flex Consumption; Azure-Samples Flex templates use 100)."""
    for name, param in (
        ("main.bicep", "maximumInstanceCount"),
        ("app/function.bicep", "maximumInstanceCount"),
    ):
        model = bicep[name]
        assert decorator(model, param, "min_value") == 40, name
        assert param_default(model, param) == 100, name


def test_an_existing_resource_group_is_referenced_not_declared(bicep: Models) -> None:
    """azd down deletes a group the template creates and leaves one it only references
    (Azure/azure-dev cli/azd/pkg/azapi/resource_group_classifier.go)."""
    main = bicep["main.bicep"]
    assert param_default(main, "resourceGroupExists") is False
    new_group = main["resources"]["newGroup"]
    assert new_group["type"] == "Microsoft.Resources/resourceGroups"
    assert condition(new_group) == "createResourceGroup"
    assert "resourceGroupExists" in json.dumps(variable(main, "createResourceGroup"))
    assert main["resources"]["rg"]["existing"] is True
    assert main["outputs"]["AZURE_RESOURCE_GROUP_CREATED"]["value"] == "createResourceGroup"


def test_the_registry_may_live_in_another_subscription(bicep: Models) -> None:
    main = bicep["main.bicep"]
    scope = json.dumps(config(main["resources"]["existingRegistry"])["scope"])
    assert "effectiveRegistrySubscription" in scope
    assert main["outputs"]["AZURE_REGISTRY_SUBSCRIPTION_ID"]["value"] == (
        "effectiveRegistrySubscription"
    )
    wiring = main["outputs"]["AZURE_WIRING_PARAMETERS"]["value"]
    assert "appSubscriptionId" in wiring
    events = bicep["core/eventgrid.bicep"]
    for name in ("deadLetterStorage", "functionApp"):
        assert "appSubscriptionId" in json.dumps(config(events["resources"][name])["scope"])
    assert "appSubscriptionId" in json.dumps(config(events["modules"]["deadLetterRole"])["scope"])
    phase2 = bicep["subscription.bicep"]["modules"]
    assert "appSubscriptionId" in json.dumps(config(phase2["deadLetterAlerts"])["scope"])
    assert config(phase2["events"])["scope"] != config(phase2["registryRoles"]).get("scope")


def test_each_environment_has_its_own_labelled_event_subscription(bicep: Models) -> None:
    assert variable(bicep["main.bicep"], "eventSubscriptionName") == (
        "retag-on-image-pushed-${resourceToken}"
    )
    subscription = config(
        one_resource(
            bicep["core/eventgrid.bicep"], "Microsoft.EventGrid/systemTopics/eventSubscriptions"
        )
    )
    assert subscription["properties"]["labels"] == ["acr-retag-env=${environmentName}"]
    topic = config(bicep["subscription.bicep"]["modules"]["events"])["params"]["tags"]
    assert topic == {"'acr-retag-env'": "environmentName"}


def test_flux_receiver_token_is_a_key_vault_reference_with_the_app_identity(bicep: Models) -> None:
    main = bicep["main.bicep"]
    for param in ("fluxReceiverUrl", "fluxReceiverTokenSecretUri", "fluxTokenKeyVaultId"):
        assert param_default(main, param) == "", param  # off by default
    token = variable(main, "fluxReceiverTokenSetting")["operator"]["operands"]
    assert token["false_value"] == {
        "FLUX_RECEIVER_TOKEN": "@Microsoft.KeyVault(SecretUri=${fluxReceiverTokenSecretUri})"
    }
    app = config(one_resource(bicep["app/function.bicep"], "Microsoft.Web/sites"))
    assert app["properties"]["keyVaultReferenceIdentity"] == "identityId"
    roles = bicep["app/vault-secrets-role.bicep"]
    assignment = one_resource(roles, "Microsoft.Authorization/roleAssignments")
    assert role_id_of(roles, assignment) == "4633458b-17de-408a-b874-0445c86b69e6"
    assert config(assignment)["scope"] == "vault"  # that vault only


def test_audit_topic_is_optional_entra_only_with_a_scoped_sender_role(bicep: Models) -> None:
    main = bicep["main.bicep"]
    assert param_default(main, "createEventsTopic") is False
    assert param_default(main, "eventsTopicId") == ""
    topic = bicep["core/events-topic.bicep"]
    assert (
        config(one_resource(topic, "Microsoft.EventGrid/topics"))["properties"]["disableLocalAuth"]
        is True
    )
    for name in ("core/events-topic.bicep", "app/topic-sender-role.bicep"):
        model = bicep[name]
        assignment = one_resource(model, "Microsoft.Authorization/roleAssignments")
        assert (
            role_id_of(model, assignment) == "d5a91429-5739-47e2-a06b-3470a27159e7"
        )  # Data Sender
        assert config(assignment)["scope"] == "topic"
    setting = variable(main, "eventsTopicSetting")["operator"]["operands"]["false_value"]
    assert setting == {"RETAG_EVENTS_TOPIC": "eventsTopicEndpoint"}


def test_deployer_data_access_is_optional_and_container_scoped(bicep: Models) -> None:
    main = bicep["main.bicep"]
    assert param_default(main, "grantDeployerDataAccess") is False
    assert "grantDeployerDataAccess" in json.dumps(condition(main["modules"]["deployerRoles"]))
    assert parameters_file()["deployerPrincipalId"] == "AZURE_PRINCIPAL_ID"
    roles = bicep["app/deployer-roles.bicep"]
    assignment = one_resource(roles, "Microsoft.Authorization/roleAssignments")
    assert role_id_of(roles, assignment) == ROLE_IDS["storageBlobDataContributor"]
    assert config(assignment)["scope"] == "container"
