/* hold: many idle connections, held and verified. */
#ifndef WHARF_HOLD_H
#define WHARF_HOLD_H

int hold_main(int argc, char **argv);

#endif
