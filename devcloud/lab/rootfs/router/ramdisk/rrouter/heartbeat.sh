#!/bin/bash
date +%s > /ramdisk/rrouter/keepalived.ts
