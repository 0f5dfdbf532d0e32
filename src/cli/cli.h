/* Subcommands of the weft binary. Each returns the process exit status. */
#ifndef WF_CLI_H
#define WF_CLI_H

int wf_cmd_proxy(int argc, char **argv);
int wf_cmd_validate(int argc, char **argv);
int wf_cmd_analyze(int argc, char **argv);
int wf_cmd_control(int argc, char **argv);
int wf_cmd_proxy_status(int argc, char **argv);
int wf_cmd_translate(int argc, char **argv);

#endif
