"""Shared package of the Talonic watchdog: the Talonic API client, models, policies and formatting.

It ships as a SAM layer. Nothing here knows about Lambda: handlers parse their input, call into this
package and shape the output, so everything here can be tested without AWS.
"""
