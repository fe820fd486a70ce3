"""The agent endpoint: FusionInventory / OCS (zlib-compressed XML, PROLOG then INVENTORY) and the
GLPI Agent JSON protocol (CONTACT then inventory), authenticated by agent tokens (docs/discovery.md,
"Agents")."""
