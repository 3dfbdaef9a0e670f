"""The mock editor: a web page on the admin port (static/, built from web/) and the /api it
uses (mocks, traffic, AI generate and improve). Routes are added to the admin app in routes.py.
"""
