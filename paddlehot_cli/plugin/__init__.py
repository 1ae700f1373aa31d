"""build-plugin: render the plugin templates, compile, link, embed; plus the pdcapi library."""
