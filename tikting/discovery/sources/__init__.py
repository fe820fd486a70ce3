"""Discovery sources: parsers from each input format to observations (tikting/discovery/observations.py).

    nmap.py          nmap XML (-oX): hosts, addresses, names, ports and services, OS matches, uptime
    glpi.py          GLPI Agent / FusionInventory inventories, JSON (schema-checked) and XML
    netdiscovery.py  network discovery and SNMP query results (NETDISCOVERY / SNMPQUERY XML)
    csv_cis.py       CSV of configuration items (ours, or another CMDB's export)
    detect.py        which of these a file is, from its content
    scan.py          running nmap on an allowed range

Parsers read bytes within TIKTING_DISCOVERY_MAX_BYTES, parse XML with defusedxml, never write to
the database and never raise for bad input: every problem is a ParseError naming its place.
"""
