/* version: what --version prints. WHARF_BACKENDS comes from the Makefile's probes. */
#ifndef WHARF_VERSION_H
#define WHARF_VERSION_H

#define WHARF_VERSION "0.1.0"

#ifndef WHARF_BACKENDS
#define WHARF_BACKENDS "epoll"
#endif

#endif
