# Regenerates tools.json: the upstream inputSchemas (names, types, required, enums as in
# Sources/MCPServer/Tools/ToolDefinitions.swift, converted by swift2json.py) with our own English prose.
# Usage: python3 swift2json.py ToolDefinitions.swift upstream.json && python3 make_tools.py
import json
up = json.load(open('upstream.json'))
tools = {
 "help": "Lists the MCP tools the caller may use now (depends on authentication and the session's purpose, task or chat); with tool_name, details of one tool.",
 "authenticate": "Authenticate with agent id, passkey and project id; returns a session token and an instruction. Call this first after starting. The server decides the session's purpose (task or chat) from the pending work; with no work it fails with 'No valid purpose'.",
 "health_check": "Reports whether the server is up. The coordinator calls it at the start of every poll.",
 "list_managed_agents": "Ids of the AI agents the coordinator manages (details are hidden).",
 "list_active_projects_with_agents": "Active projects and the agents assigned to each, for the coordinator to decide what to poll. With agent_id the per-agent (multi-device) working directory is used.",
 "get_agent_action": "Decides what the coordinator should do for one agent in one project: 'start' launches an agent process (and reserves the spawn for 120 s until the agent authenticates), 'hold' changes nothing. No task details are returned.",
 "register_execution_log_file": "Attaches a log file path to the latest execution log of an agent's task (coordinator only).",
 "report_process_exit": "Tells the server an agent process ended and how many processes of the same (agent, project) still run, so it can remove the sessions that are left over.",
 "report_agent_error": "Stores an agent process error as a system message in the agent's chat for the project (it counts as unread).",
 "get_app_settings": "Application settings the coordinator needs when starting agents (base prompt and the like).",
 "get_subordinate_profile": "Profile of an agent: system prompt and skills (ZIP archives, base64).",
 "logout": "Ends the current session. Call it when get_next_action says 'logout' (for example after answering a chat), then exit the agent process.",
 "get_my_task": "Details of the authenticated agent's current task, with context and handoffs. Then follow the instruction (do the task, then report_completed).",
 "get_next_action": "What to do next; follow its instruction, then call it again. In chat sessions pass timeout_seconds to wait for new messages on the server.",
 "report_model": "Reports the provider and model the agent runs on.",
 "get_my_profile": "The authenticated agent's own profile.",
 "report_execution_start": "Reports that work on a task started; returns an execution log id (deprecated).",
 "report_execution_complete": "Reports that work on a task ended, with exit code and duration (deprecated).",
 "report_completed": "Reports the task's result (success, failed or blocked).",
 "get_pending_messages": "Unread chat messages for this agent in the project (chat session only); reading marks them read.",
 "send_message": "Sends a chat message to another agent or a human.",
}
props = {
 "session_token": "Session token from authenticate",
 "agent_id": "Agent id", "project_id": "Project id", "passkey": "The agent's passkey",
 "tool_name": "Name of one tool to describe; omit for the list",
 "timeout_seconds": "Long-poll wait in seconds for new chat messages (default 45); chat sessions should always pass it",
 "task_id": "Task id", "log_file_path": "Absolute path of the log file",
 "remaining_processes": "Processes of the same (agent_id, project_id) still running",
 "error_message": "Error message", "provider": "Provider in use (claude, gemini, openai, custom, ...)",
 "model_id": "Model id in use (for example claude-sonnet-4-5, gemini-2.5-pro)",
 "execution_log_id": "Execution log id from report_execution_start", "exit_code": "Exit code (0 = success)",
 "duration_seconds": "Duration in seconds", "result": "Result", "summary": "Summary of the work (optional)",
 "next_steps": "Next steps (optional)",
 "content": "Message text (at most 4,000 characters)",
 "conversation_id": "Conversation id (AI-to-AI conversations; default: the active one)",
 "related_task_id": "Related task id (optional)",
 "target_agent_id": "Receiving agent id (an agent of the same project)",
}
out = []
for name, desc in tools.items():
    t = up[name]
    schema = json.loads(json.dumps(t["inputSchema"]))
    for p, v in schema.get("properties", {}).items():
        if "description" in v:
            v["description"] = props.get(p) or (_ for _ in ()).throw(SystemExit(f"no prose for {name}.{p}"))
    out.append({"name": name, "description": desc, "inputSchema": schema})
json.dump(out, open('tools.json', 'w'), indent=1, sort_keys=True)
print(len(out))
