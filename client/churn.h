/* churn: connection rate (connect, round trips, close, repeat). */
#ifndef WHARF_CHURN_H
#define WHARF_CHURN_H

int churn_main(int argc, char **argv);

#endif
