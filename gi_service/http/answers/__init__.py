"""What the JSON API and the pages both answer, built once: the statistics' files and drawings, the annual
reports' files, label images and print files, findings sent from a device and their photos.

Each function takes the signed-in principal and the query or body model it reads (defined here, so both
faces validate alike), calls the services and returns the answer. The API's view and the page that offers
the same file call it under their own access rule (``endpoint(...)`` or ``page(...)``); a page never calls
an API view.
"""
