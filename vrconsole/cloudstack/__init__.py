"""CloudStack API access for VR Console: the console's client and the API simulator it is tested against."""
