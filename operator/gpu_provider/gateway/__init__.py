"""`gpu-provider gateway`: the provider's HTTPS API (aiohttp).

`app.create_app` builds the application from route modules (`public` today; the manifest
and lease routes join it the same way); `errors` turns every failure into a JSON body with
a message; `status` renders `/status` (pure); `source` keeps the inventory fresh from the
cluster; `tls` makes the server's TLS context; `server` runs it all.
"""
