set terminal pngcairo size 900,600 font ",10"
set output 'timeseries.png'
set multiplot layout 2,1 title 'wharfd frame://, 100 connections: per second'
set grid
set xlabel 'seconds'
set xrange [0:*]
set ylabel 'requests/s'
set yrange [0:*]
plot 'timeseries.dat' using 1:2 with linespoints lw 2 pt 7 ps 0.5 title 'requests/s'
set ylabel 'latency (ms)'
set logscale y
set yrange [*:*]
plot 'timeseries.dat' using 1:3 with lines lw 2 title 'p50', '' using 1:4 with lines lw 2 title 'p99', \
     '' using 1:5 with lines lw 1 title 'max'
unset multiplot
