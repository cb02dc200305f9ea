"""Where the endpoint under test and its neighbouring operations live, under the API base (Core API v1)."""
from __future__ import annotations

BASE_PATH = "/core/v1"
ALLOCATE_PATH = "/virtual_machine_network_interfaces/virtual_machine_network_interface/allocate_ip"
READ_IP_PATH = "/ip_addresses/ip_address"
READ_INTERFACE_PATH = "/virtual_machine_network_interfaces/virtual_machine_network_interface"
UNALLOCATE_PATH = "/ip_addresses/ip_address/unallocate"
