/* send: the tutorial's interactive client, for every framed protocol. */
#ifndef WHARF_SEND_H
#define WHARF_SEND_H

int send_main(int argc, char **argv);

#endif
