"""The engineer console: web pages for the platform's operators (not built yet)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
