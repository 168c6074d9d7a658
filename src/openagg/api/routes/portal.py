"""The developer portal: web pages for clients (not built yet)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
